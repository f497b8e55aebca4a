"""The words of the verification page, in English and French, and which one a client gets.

``negotiate()`` reads Accept-Language (RFC 9110, section 12.5.4): a client's region
variants count for their language (``fr-CA`` is French), ``*`` stands for every language it
did not name, ``q=0`` refuses one, and ties go to the range named first. Anything we cannot
read, or nothing acceptable, gets English.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Literal, get_args

Lang = Literal["en", "fr"]
LANGS: tuple[Lang, ...] = get_args(Lang)
DEFAULT: Lang = "en"

_RANGE = re.compile(r"\s*([A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)\s*(?:;\s*q\s*=\s*([0-9.]+)\s*)?")
_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")
_MAX_RANGES = 50  # a header is a few ranges; a long one is not worth reading to its end


def _ranges(header: str) -> list[tuple[str, float]]:
    """(primary subtag or "*", q) for each well-formed range, in the header's order."""
    found = []
    for item in header.split(",")[:_MAX_RANGES]:
        match = _RANGE.fullmatch(item)
        if match is None:
            continue  # one malformed range does not spoil the others
        tag, q = match.group(1), match.group(2)
        if q is not None and not _QVALUE.fullmatch(q):
            continue
        found.append((tag.split("-")[0].lower(), 1.0 if q is None else float(q)))
    return found


def negotiate(header: str | None) -> Lang:
    if not header:
        return DEFAULT
    ranges = _ranges(header)
    wildcard = next((q for tag, q in ranges if tag == "*"), None)
    best: tuple[float, int, Lang] | None = None
    for lang in LANGS:
        named = [(q, i) for i, (tag, q) in enumerate(ranges) if tag == lang]
        if named:
            q, position = max(named, key=lambda pair: (pair[0], -pair[1]))
        elif wildcard is not None:
            q, position = wildcard, len(ranges)  # after every named range
        else:
            continue
        if q > 0 and (best is None or (q, -position) > (best[0], -best[1])):
            best = (q, position, lang)
    return DEFAULT if best is None else best[2]


_MONTHS: dict[Lang, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
           "septembre", "octobre", "novembre", "décembre"),
}  # fmt: skip


def format_date(iso: str, lang: Lang) -> str:
    """``2030-01-31`` -> ``31 January 2030`` / ``31 janvier 2030``; other text as it is."""
    try:
        day = date.fromisoformat(iso)
    except ValueError:
        return iso
    return f"{day.day} {_MONTHS[lang][day.month - 1]} {day.year}"


# Keys: verdict.<Verdict>, verdict.<Verdict>.says, warning.<Warning>, warning.<Warning>.says,
# help.<reason> for a not-authentic answer (help.other when the reason has no line of its own),
# notice.<Verdict> for a verdict that comes with the brand's notice.
MESSAGES: dict[Lang, dict[str, str]] = {
    "en": {
        "site": "Transparency",
        "verdict.authentic": "Authentic",
        "verdict.authentic.says": "This code was issued by the brand for this product.",
        "verdict.suspicious": "Suspicious",
        "verdict.suspicious.says": (
            "This code is real, but the way it has been scanned suggests copies of it are "
            "in circulation. The product in your hands may be a counterfeit."
        ),
        "verdict.not_authentic": "Not authentic",
        "verdict.not_authentic.says": "We cannot confirm that this product is genuine.",
        "verdict.revoked": "Revoked",
        "verdict.revoked.says": (
            "The brand has withdrawn this code: it was revoked, reported stolen or destroyed. "
            "Do not rely on this product; contact the brand or the seller."
        ),
        "verdict.recalled": "Recalled",
        "verdict.recalled.says": (
            "This product is genuine, but the brand has recalled it. Stop using it and "
            "follow the brand's instructions below."
        ),
        "verdict.expired": "Expired",
        "verdict.expired.says": (
            "This product is genuine, but past its expiry date. Do not use it."
        ),
        "notice.recalled": "About this recall",
        "notice.revoked": "What the brand says",
        "notice.expired": "What to do",
        "notice.reason": "Reason:",
        "notice.instructions": "What to do:",
        "contact": "Contact the brand",
        "contact.says": "{brand} can tell you more:",
        "logo": "{brand} logo",
        "report": "Report this product",
        "report.says": (
            "Tell the brand where you got it, so that it can act. We ask nothing about you; "
            "write nothing personal unless you want the brand to know it."
        ),
        "report.place": "Where did you buy it? (shop name or web address)",
        "report.region": "Country, optional (two letters, for example FR)",
        "report.photo": "Photo of the product, optional",
        "report.note": "Anything else, optional",
        "report.send": "Send the report",
        "reported": "Thank you",
        "reported.says": "Your report was sent to the brand.",
        "invalid": "We could not send this",
        "invalid.says": "Something in the form was missing or too large. Go back and try again.",
        "help.malformed": (
            "This is not a code we can read. Scan the Transparency code on the product's "
            "label again, or type the characters printed under it."
        ),
        "help.forged": (
            "This code was not issued by the brand. The product may be a counterfeit: "
            "contact the brand or the seller before using it."
        ),
        "help.unknown": (
            "This code is not registered. If you scanned it from a product's label, the "
            "product may be a counterfeit: contact the brand or the seller."
        ),
        "help.other": "Scan the code again; if the answer does not change, contact the brand.",
        "help.key_revoked": "The key the brand used to sign this code has been withdrawn.",
        "warnings": "Why you should be careful",
        "warning.scanned_many_times": "Checked many times",
        "warning.scanned_many_times.says": (
            "This code has been checked far more often than one product normally is."
        ),
        "warning.many_regions": "Checked in many countries",
        "warning.many_regions.says": "This code has been checked in several different countries.",
        "warning.not_shipped": "Not shipped by the brand",
        "warning.not_shipped.says": (
            "The brand sells this product only through checked shipments, and has no record "
            "of shipping this one."
        ),
        "warning.scanned_after_shipping": "Checked many times since it was sold",
        "warning.scanned_after_shipping.says": (
            "Since the brand shipped this product, its code has been checked far more often "
            "than one owner normally does."
        ),
        "warning.expired": "Expired",
        "warning.expired.says": "This product is past its expiry date.",
        "warning.recalled": "Recalled",
        "warning.recalled.says": (
            "The brand has recalled this product. Stop using it and follow the brand's "
            "recall instructions."
        ),
        "product": "Product",
        "brand": "Brand",
        "name": "Name",
        "gtin": "GTIN",
        "lot": "Lot",
        "expiry": "Expiry date",
        "image": "Photo of {name}",
        "code.label": "Code: ",
        "busy": "Too many checks",
        "busy.says": (
            "We received too many checks from your connection. Wait {seconds} seconds, "
            "then scan the code again."
        ),
        "error": "We could not check this code",
        "error.says": "Something went wrong on our side. Please scan the code again later.",
    },
    "fr": {
        "site": "Transparency",
        "verdict.authentic": "Authentique",
        "verdict.authentic.says": "Ce code a été émis par la marque pour ce produit.",
        "verdict.suspicious": "Suspect",
        "verdict.suspicious.says": (
            "Ce code est réel, mais la façon dont il a été scanné laisse penser que des "
            "copies circulent. Le produit que vous avez en main est peut-être une contrefaçon."
        ),
        "verdict.not_authentic": "Non authentique",
        "verdict.not_authentic.says": (
            "Nous ne pouvons pas confirmer que ce produit est authentique."
        ),
        "verdict.revoked": "Révoqué",
        "verdict.revoked.says": (
            "La marque a retiré ce code : il a été révoqué, déclaré volé ou détruit. "
            "Ne vous fiez pas à ce produit ; contactez la marque ou le vendeur."
        ),
        "verdict.recalled": "Rappelé",
        "verdict.recalled.says": (
            "Ce produit est authentique, mais la marque l'a rappelé. Cessez de l'utiliser et "
            "suivez les consignes de la marque ci-dessous."
        ),
        "verdict.expired": "Périmé",
        "verdict.expired.says": (
            "Ce produit est authentique, mais sa date de péremption est dépassée. Ne "
            "l'utilisez pas."
        ),
        "notice.recalled": "À propos de ce rappel",
        "notice.revoked": "Ce que dit la marque",
        "notice.expired": "Que faire",
        "notice.reason": "Motif\u00a0:",
        "notice.instructions": "Que faire\u00a0:",
        "contact": "Contacter la marque",
        "contact.says": "{brand} peut vous en dire plus\u00a0:",
        "logo": "Logo de {brand}",
        "report": "Signaler ce produit",
        "report.says": (
            "Indiquez à la marque où vous l'avez obtenu, pour qu'elle puisse agir. Nous ne "
            "demandons rien sur vous\u00a0; n'écrivez rien de personnel, sauf si vous voulez "
            "que la marque le sache."
        ),
        "report.place": "Où l'avez-vous acheté\u00a0? (nom du magasin ou adresse web)",
        "report.region": "Pays, facultatif (deux lettres, par exemple FR)",
        "report.photo": "Photo du produit, facultative",
        "report.note": "Autre chose, facultatif",
        "report.send": "Envoyer le signalement",
        "reported": "Merci",
        "reported.says": "Votre signalement a été transmis à la marque.",
        "invalid": "Nous n'avons pas pu l'envoyer",
        "invalid.says": (
            "Un champ du formulaire manquait ou était trop long. Revenez en arrière et réessayez."
        ),
        "help.malformed": (
            "Ce n'est pas un code que nous savons lire. Scannez à nouveau le code Transparency "
            "de l'étiquette du produit, ou saisissez les caractères imprimés dessous."
        ),
        "help.forged": (
            "Ce code n'a pas été émis par la marque. Le produit est peut-être une contrefaçon : "
            "contactez la marque ou le vendeur avant de l'utiliser."
        ),
        "help.unknown": (
            "Ce code n'est pas enregistré. Si vous l'avez scanné sur l'étiquette d'un produit, "
            "celui-ci est peut-être une contrefaçon : contactez la marque ou le vendeur."
        ),
        "help.other": (
            "Scannez à nouveau le code ; si la réponse ne change pas, contactez la marque."
        ),
        "help.key_revoked": "La clé avec laquelle la marque a signé ce code a été retirée.",
        "warnings": "Pourquoi rester prudent",
        "warning.scanned_many_times": "Vérifié de nombreuses fois",
        "warning.scanned_many_times.says": (
            "Ce code a été vérifié bien plus souvent qu'un seul produit ne l'est d'habitude."
        ),
        "warning.many_regions": "Vérifié dans de nombreux pays",
        "warning.many_regions.says": "Ce code a été vérifié dans plusieurs pays différents.",
        "warning.not_shipped": "Non expédié par la marque",
        "warning.not_shipped.says": (
            "La marque ne vend ce produit que par des expéditions contrôlées, et n'a aucune "
            "trace de l'expédition de celui-ci."
        ),
        "warning.scanned_after_shipping": "Vérifié de nombreuses fois depuis sa vente",
        "warning.scanned_after_shipping.says": (
            "Depuis que la marque a expédié ce produit, son code a été vérifié bien plus "
            "souvent qu'un seul propriétaire ne le fait d'habitude."
        ),
        "warning.expired": "Périmé",
        "warning.expired.says": "La date de péremption de ce produit est dépassée.",
        "warning.recalled": "Rappelé",
        "warning.recalled.says": (
            "La marque a rappelé ce produit. Cessez de l'utiliser et suivez les consignes "
            "de rappel de la marque."
        ),
        "product": "Produit",
        "brand": "Marque",
        "name": "Nom",
        "gtin": "GTIN",
        "lot": "Lot",
        "expiry": "Date de péremption",
        "image": "Photo de {name}",
        "code.label": "Code\u00a0: ",
        "busy": "Trop de vérifications",
        "busy.says": (
            "Nous avons reçu trop de vérifications depuis votre connexion. Attendez "
            "{seconds} secondes, puis scannez à nouveau le code."
        ),
        "error": "Nous n'avons pas pu vérifier ce code",
        "error.says": (
            "Une erreur s'est produite de notre côté. Scannez à nouveau le code plus tard."
        ),
    },
}


def messages(lang: Lang) -> Mapping[str, str]:
    return MESSAGES[lang]
