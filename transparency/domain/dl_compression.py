"""Compressed GS1 Digital Link URIs, decompressed: ``https://example.com/ARHKVAdpQg`` is
``https://example.com/01/09780345418913``.

The GS1 Digital Link compression algorithm (GS1 Digital Link 1.1, section 9; the GS1-Conformant
Resolver standard requires a resolver to decompress) packs the element strings into a bit
string written in the URI-safe base64 alphabet, six bits a character. Each element starts
with two hex nibbles:

* ``00``-``99``: the first two digits of an AI; ``TABLE_P`` says how many more digits
  (one nibble each) the AI has; its value follows, laid out by ``FORMATS``;
* any other pair in ``TABLE_OPT``: a run of AIs written without their keys (``0C`` is
  (01) then (21)), their values one after the other;
* ``F`` then 7 bits: a non-GS1 ``key=value`` of the query string, the key in base64
  characters of that length.

A value's part is numeric (``N``: fixed length ``N14``, as a binary number of
ceil(n log2 10) bits; or variable ``N..20``, a length field first) or alphanumeric
(``X``: three bits naming the encoding, a length field when variable, then the
characters: 0 digits as a number, 1 and 2 lower and upper case hex at 4 bits, 3 base64
at 6 bits, 4 ASCII at 7 bits).

The tables are GS1's, taken from GS1's digital link toolkit (GS1DigitalLinkToolkit.js,
Apache-2.0, as shipped with gs1/GS1_DigitalLink_Resolver_CE); the round-trip vectors in
the tests were made with that toolkit's own compressor. Only decompression is here: the
service never writes compressed URIs.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from transparency.domain.errors import InvalidCode

_BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_HEX = "0123456789ABCDEF"
COMPRESSED_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")

# How many digits an AI has, by its first two.
TABLE_P: dict[str, int] = {
    "00": 2, "01": 2, "02": 2, "10": 2, "11": 2, "12": 2, "13": 2, "15": 2, "16": 2,
    "17": 2, "20": 2, "21": 2, "22": 2, "23": 3, "24": 3, "25": 3, "30": 2, "31": 4,
    "32": 4, "33": 4, "34": 4, "35": 4, "36": 4, "37": 2, "39": 4, "40": 3, "41": 3,
    "42": 3, "43": 4, "70": 4, "71": 3, "72": 4, "80": 4, "81": 4, "82": 4, "90": 2,
    "91": 2, "92": 2, "93": 2, "94": 2, "95": 2, "96": 2, "97": 2, "98": 2, "99": 2,
}  # fmt: skip

# Runs of AIs written under one code, without their keys.
TABLE_OPT: dict[str, tuple[str, ...]] = {
    "0A": ("01", "22"), "0B": ("01", "10"), "0C": ("01", "21"), "0D": ("01", "17"),
    "0E": ("01", "7003"), "0F": ("01", "30"), "1A": ("01", "10", "21", "17"),
    "1B": ("01", "15"), "1C": ("01", "11"), "1D": ("01", "16"), "1E": ("01", "91"),
    "1F": ("01", "10", "15"), "2A": ("01", "3100"), "2B": ("01", "3101"),
    "2C": ("01", "3102"), "2D": ("01", "3103"), "2E": ("01", "3104"), "2F": ("01", "3105"),
    "3A": ("01", "3200"), "3B": ("01", "3201"), "3C": ("01", "3202"), "3D": ("01", "3203"),
    "3E": ("01", "3204"), "3F": ("01", "3205"), "9A": ("8010", "8011"),
    "9B": ("8017", "8019"), "9C": ("8018", "8019"), "9D": ("414", "254"),
    **{f"A{d}": ("01", f"392{d}") for d in "0123456789"},
    **{f"C{d}": ("255", f"390{d}") for d in "0123456789"},
    "CA": ("255", "3940"), "CB": ("255", "3941"), "CC": ("255", "3942"), "CD": ("255", "3943"),
}  # fmt: skip

# Each AI's value, part by part: N or X, then a fixed length or ".." and a maximum. (The
# toolkit's entry for 7040 misspells its second part's length; it is N1 X3.)
FORMATS: dict[str, str] = {
    "00": "N18", "01": "N14", "02": "N14", "10": "X..20", "11": "N6", "12": "N6", "13": "N6",
    "15": "N6", "16": "N6", "17": "N6", "20": "N2", "21": "X..20", "22": "X..20",
    "235": "N3 X..28", "240": "X..30", "241": "X..30", "242": "N..6", "243": "X..20",
    "250": "X..30", "251": "X..30", "253": "N13 X..17", "254": "X..20", "255": "N13 N..12",
    "30": "N..8", "3100": "N6", "3101": "N6", "3102": "N6", "3103": "N6", "3104": "N6",
    "3105": "N6", "3110": "N6", "3111": "N6", "3112": "N6", "3113": "N6", "3114": "N6",
    "3115": "N6", "3120": "N6", "3121": "N6", "3122": "N6", "3123": "N6", "3124": "N6",
    "3125": "N6", "3130": "N6", "3131": "N6", "3132": "N6", "3133": "N6", "3134": "N6",
    "3135": "N6", "3140": "N6", "3141": "N6", "3142": "N6", "3143": "N6", "3144": "N6",
    "3145": "N6", "3150": "N6", "3151": "N6", "3152": "N6", "3153": "N6", "3154": "N6",
    "3155": "N6", "3160": "N6", "3161": "N6", "3162": "N6", "3163": "N6", "3164": "N6",
    "3165": "N6", "3200": "N6", "3201": "N6", "3202": "N6", "3203": "N6", "3204": "N6",
    "3205": "N6", "3210": "N6", "3211": "N6", "3212": "N6", "3213": "N6", "3214": "N6",
    "3215": "N6", "3220": "N6", "3221": "N6", "3222": "N6", "3223": "N6", "3224": "N6",
    "3225": "N6", "3230": "N6", "3231": "N6", "3232": "N6", "3233": "N6", "3234": "N6",
    "3235": "N6", "3240": "N6", "3241": "N6", "3242": "N6", "3243": "N6", "3244": "N6",
    "3245": "N6", "3250": "N6", "3251": "N6", "3252": "N6", "3253": "N6", "3254": "N6",
    "3255": "N6", "3260": "N6", "3261": "N6", "3262": "N6", "3263": "N6", "3264": "N6",
    "3265": "N6", "3270": "N6", "3271": "N6", "3272": "N6", "3273": "N6", "3274": "N6",
    "3275": "N6", "3280": "N6", "3281": "N6", "3282": "N6", "3283": "N6", "3284": "N6",
    "3285": "N6", "3290": "N6", "3291": "N6", "3292": "N6", "3293": "N6", "3294": "N6",
    "3295": "N6", "3300": "N6", "3301": "N6", "3302": "N6", "3303": "N6", "3304": "N6",
    "3305": "N6", "3310": "N6", "3311": "N6", "3312": "N6", "3313": "N6", "3314": "N6",
    "3315": "N6", "3320": "N6", "3321": "N6", "3322": "N6", "3323": "N6", "3324": "N6",
    "3325": "N6", "3330": "N6", "3331": "N6", "3332": "N6", "3333": "N6", "3334": "N6",
    "3335": "N6", "3340": "N6", "3341": "N6", "3342": "N6", "3343": "N6", "3344": "N6",
    "3345": "N6", "3350": "N6", "3351": "N6", "3352": "N6", "3353": "N6", "3354": "N6",
    "3355": "N6", "3360": "N6", "3361": "N6", "3362": "N6", "3363": "N6", "3364": "N6",
    "3365": "N6", "3370": "N6", "3371": "N6", "3372": "N6", "3373": "N6", "3374": "N6",
    "3375": "N6", "3400": "N6", "3401": "N6", "3402": "N6", "3403": "N6", "3404": "N6",
    "3405": "N6", "3410": "N6", "3411": "N6", "3412": "N6", "3413": "N6", "3414": "N6",
    "3415": "N6", "3420": "N6", "3421": "N6", "3422": "N6", "3423": "N6", "3424": "N6",
    "3425": "N6", "3430": "N6", "3431": "N6", "3432": "N6", "3433": "N6", "3434": "N6",
    "3435": "N6", "3440": "N6", "3441": "N6", "3442": "N6", "3443": "N6", "3444": "N6",
    "3445": "N6", "3450": "N6", "3451": "N6", "3452": "N6", "3453": "N6", "3454": "N6",
    "3455": "N6", "3460": "N6", "3461": "N6", "3462": "N6", "3463": "N6", "3464": "N6",
    "3465": "N6", "3470": "N6", "3471": "N6", "3472": "N6", "3473": "N6", "3474": "N6",
    "3475": "N6", "3480": "N6", "3481": "N6", "3482": "N6", "3483": "N6", "3484": "N6",
    "3485": "N6", "3490": "N6", "3491": "N6", "3492": "N6", "3493": "N6", "3494": "N6",
    "3495": "N6", "3500": "N6", "3501": "N6", "3502": "N6", "3503": "N6", "3504": "N6",
    "3505": "N6", "3510": "N6", "3511": "N6", "3512": "N6", "3513": "N6", "3514": "N6",
    "3515": "N6", "3520": "N6", "3521": "N6", "3522": "N6", "3523": "N6", "3524": "N6",
    "3525": "N6", "3530": "N6", "3531": "N6", "3532": "N6", "3533": "N6", "3534": "N6",
    "3535": "N6", "3540": "N6", "3541": "N6", "3542": "N6", "3543": "N6", "3544": "N6",
    "3545": "N6", "3550": "N6", "3551": "N6", "3552": "N6", "3553": "N6", "3554": "N6",
    "3555": "N6", "3560": "N6", "3561": "N6", "3562": "N6", "3563": "N6", "3564": "N6",
    "3565": "N6", "3570": "N6", "3571": "N6", "3572": "N6", "3573": "N6", "3574": "N6",
    "3575": "N6", "3600": "N6", "3601": "N6", "3602": "N6", "3603": "N6", "3604": "N6",
    "3605": "N6", "3610": "N6", "3611": "N6", "3612": "N6", "3613": "N6", "3614": "N6",
    "3615": "N6", "3620": "N6", "3621": "N6", "3622": "N6", "3623": "N6", "3624": "N6",
    "3625": "N6", "3630": "N6", "3631": "N6", "3632": "N6", "3633": "N6", "3634": "N6",
    "3635": "N6", "3640": "N6", "3641": "N6", "3642": "N6", "3643": "N6", "3644": "N6",
    "3645": "N6", "3650": "N6", "3651": "N6", "3652": "N6", "3653": "N6", "3654": "N6",
    "3655": "N6", "3660": "N6", "3661": "N6", "3662": "N6", "3663": "N6", "3664": "N6",
    "3665": "N6", "3670": "N6", "3671": "N6", "3672": "N6", "3673": "N6", "3674": "N6",
    "3675": "N6", "3680": "N6", "3681": "N6", "3682": "N6", "3683": "N6", "3684": "N6",
    "3685": "N6", "3690": "N6", "3691": "N6", "3692": "N6", "3693": "N6", "3694": "N6",
    "3695": "N6", "37": "N..8", "3900": "N..15", "3901": "N..15", "3902": "N..15",
    "3903": "N..15", "3904": "N..15", "3905": "N..15", "3906": "N..15", "3907": "N..15",
    "3908": "N..15", "3909": "N..15", "3910": "N3 N..15", "3911": "N3 N..15", "3912": "N3 N..15",
    "3913": "N3 N..15", "3914": "N3 N..15", "3915": "N3 N..15", "3916": "N3 N..15",
    "3917": "N3 N..15", "3918": "N3 N..15", "3919": "N3 N..15", "3920": "N..15", "3921": "N..15",
    "3922": "N..15", "3923": "N..15", "3924": "N..15", "3925": "N..15", "3926": "N..15",
    "3927": "N..15", "3928": "N..15", "3929": "N..15", "3930": "N3 N..15", "3931": "N3 N..15",
    "3932": "N3 N..15", "3933": "N3 N..15", "3934": "N3 N..15", "3935": "N3 N..15",
    "3936": "N3 N..15", "3937": "N3 N..15", "3938": "N3 N..15", "3939": "N3 N..15", "3940": "N4",
    "3941": "N4", "3942": "N4", "3943": "N4", "3950": "N6", "3951": "N6", "3952": "N6",
    "3953": "N6", "3954": "N6", "3955": "N6", "3956": "N6", "3957": "N6", "3958": "N6",
    "3959": "N6", "400": "X..30", "401": "X..30", "402": "N17", "403": "X..30", "410": "N13",
    "411": "N13", "412": "N13", "413": "N13", "414": "N13", "415": "N13", "416": "N13",
    "417": "N13", "420": "X..20", "421": "N3 X..9", "422": "N3", "423": "N3 N..12", "424": "N3",
    "425": "N3 N..12", "426": "N3", "427": "X..3", "4300": "X..35", "4301": "X..35",
    "4302": "X..70", "4303": "X..70", "4304": "X..70", "4305": "X..70", "4306": "X..70",
    "4307": "X2", "4308": "X..30", "4309": "N20", "4310": "X..35", "4311": "X..35",
    "4312": "X..70", "4313": "X..70", "4314": "X..70", "4315": "X..70", "4316": "X..70",
    "4317": "X2", "4318": "X..20", "4319": "X..30", "4320": "X..35", "4321": "N1", "4322": "N1",
    "4323": "N1", "4324": "N10", "4325": "N10", "4326": "N6", "7001": "N13", "7002": "X..30",
    "7003": "N10", "7004": "N..4", "7005": "X..12", "7006": "N6", "7007": "N6 N..6",
    "7008": "X..3", "7009": "X..10", "7010": "X..2", "7020": "X..20", "7021": "X..20",
    "7022": "X..20", "7023": "X..30", "7030": "N3 X..27", "7031": "N3 X..27", "7032": "N3 X..27",
    "7033": "N3 X..27", "7034": "N3 X..27", "7035": "N3 X..27", "7036": "N3 X..27",
    "7037": "N3 X..27", "7038": "N3 X..27", "7039": "N3 X..27", "7040": "N1 X3", "710": "X..20",
    "711": "X..20", "712": "X..20", "713": "X..20", "714": "X..20", "7230": "X..30",
    "7231": "X..30", "7232": "X..30", "7233": "X..30", "7234": "X..30", "7235": "X..30",
    "7236": "X..30", "7237": "X..30", "7238": "X..30", "7239": "X..30", "7240": "X..20",
    "8001": "N14", "8002": "X..20", "8003": "N14 X..16", "8004": "X..30", "8005": "N6",
    "8006": "N18", "8007": "X..24", "8008": "N8 N..4", "8009": "X..50", "8010": "X..30",
    "8011": "N..12", "8012": "X..20", "8013": "X..30", "8017": "N18", "8018": "N18",
    "8019": "N..10", "8020": "X..25", "8026": "N18", "8110": "X..70", "8111": "N4",
    "8112": "X..70", "8200": "X..70", "90": "X..30", "91": "X..90", "92": "X..90", "93": "X..90",
    "94": "X..90", "95": "X..90", "96": "X..90", "97": "X..90", "98": "X..90", "99": "X..90",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Decompressed:
    """What a compressed URI held: its GS1 element strings and other query pairs, in order."""

    ais: tuple[tuple[str, str], ...]
    other: tuple[tuple[str, str], ...]


def _length_bits(maximum: int) -> int:
    return math.ceil(math.log2(maximum) + 0.01)


def _value_bits(digits: int) -> int:
    return math.ceil(digits * math.log2(10) + 0.01)


class _Bits:
    """A cursor over the bit string; reading past its end is a malformed URI."""

    def __init__(self, segment: str) -> None:
        self.bits = "".join(f"{_BASE64.index(char):06b}" for char in segment)
        self.at = 0

    def left(self) -> int:
        return len(self.bits) - self.at

    def take(self, count: int) -> int:
        if count > self.left():
            raise InvalidCode("invalid_compression", "the compressed URI ends mid-value")
        chunk = self.bits[self.at : self.at + count]
        self.at += count
        return int(chunk, 2) if chunk else 0

    def digits(self, count: int) -> str:
        value = self.take(_value_bits(count))
        text = str(value).zfill(count)
        if len(text) > count:
            raise InvalidCode("invalid_compression", "a compressed number is too long")
        return text if count else ""

    def characters(self, encoding: int, count: int) -> str:
        if encoding == 0:
            return self.digits(count)
        if encoding in (1, 2):
            text = "".join(_HEX[self.take(4)] for _ in range(count))
            return text.lower() if encoding == 1 else text
        if encoding == 3:
            return "".join(_BASE64[self.take(6)] for _ in range(count))
        if encoding == 4:
            return "".join(chr(self.take(7)) for _ in range(count))
        raise InvalidCode("invalid_compression", f"unknown character encoding {encoding}")


def _value(bits: _Bits, ai: str) -> str:
    layout = FORMATS.get(ai)
    if layout is None:
        raise InvalidCode("invalid_ai", f"({ai}) is not a GS1 Application Identifier")
    value = ""
    for part in layout.split():
        kind, variable, size = part[0], ".." in part, int(part.lstrip("NX."))
        if kind == "N":
            count = bits.take(_length_bits(size)) if variable else size
            value += bits.digits(count)
        else:
            encoding = bits.take(3)
            count = bits.take(_length_bits(size)) if variable else size
            value += bits.characters(encoding, count)
    return value


def decompress(segment: str) -> Decompressed:
    """The element strings and other pairs of a compressed URI's last path segment.

    Raises ``InvalidCode`` when the segment is not a compressed GS1 Digital Link.
    """
    if not COMPRESSED_SEGMENT.fullmatch(segment):
        raise InvalidCode("invalid_compression", "not in the URI-safe base64 alphabet")
    bits = _Bits(segment)
    ais: list[tuple[str, str]] = []
    other: list[tuple[str, str]] = []
    # Padding to a whole character leaves fewer than 6 spare bits; no element is 8 bits.
    while bits.left() > 8:
        h1, h2 = bits.take(4), bits.take(4)
        head = _HEX[h1] + _HEX[h2]
        if h1 <= 9 and h2 <= 9:
            size = TABLE_P.get(head)
            if size is None:
                raise InvalidCode("invalid_ai", f"no GS1 Application Identifier starts {head}")
            ai = head
            for _ in range(size - 2):
                digit = bits.take(4)
                if digit > 9:
                    raise InvalidCode("invalid_ai", "a compressed AI has a non-digit")
                ai += str(digit)
            ais.append((ai, _value(bits, ai)))
        elif head in TABLE_OPT:
            ais.extend((ai, _value(bits, ai)) for ai in TABLE_OPT[head])
        elif h1 == 0xF:
            key_length = (h2 << 3) | bits.take(3)
            key = "".join(_BASE64[bits.take(6)] for _ in range(key_length))
            encoding = bits.take(3)
            other.append((key, bits.characters(encoding, bits.take(7))))
        else:
            raise InvalidCode("invalid_compression", f"no compressed element starts {head}")
    if not ais:
        raise InvalidCode("invalid_compression", "the compressed URI holds no GS1 data")
    return Decompressed(tuple(ais), tuple(other))
