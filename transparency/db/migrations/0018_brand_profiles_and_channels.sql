-- What a customer sees of a brand and of a withdrawn unit, and how a product is sold.
--
-- A brand's profile: the name and logo its customers know it by, where they reach its
-- support (an https URL or an e-mail address), and what a recall tells them to do when the
-- recall itself says nothing.
alter table brands add column display_name text check (length(display_name) between 1 and 200);
alter table brands add column logo_url text
    check (logo_url ~ '^https://' and length(logo_url) <= 2000);
alter table brands add column support text check (length(support) between 1 and 2000);
alter table brands add column recall_instructions text
    check (length(recall_instructions) between 1 and 2000);

-- 'any': sold through shops and channels with no station, so a customer check of a unit
-- that never passed fulfilment is normal; 'checked_only': every genuine unit passes a
-- station before it is sold, so such a check is a clone signal.
alter table products add column channel text not null default 'any'
    check (channel in ('any', 'checked_only'));

-- What the brand told customers to do when it withdrew a unit (a recall's instructions),
-- beside the reason it gave (status_reason). Nullable without a default: no table rewrite.
alter table units add column status_instructions text;
