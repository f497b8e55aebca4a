-- The unit lifecycle has no 'issued' state: issuance writes units 'active' at once, and a
-- batch's units count only once the batch is done (its status says so). PostgreSQL cannot
-- drop a label from an enum, so the type is made anew and the column moved onto it.
--
-- Changing the column's type rewrites every partition of units (and rebuilds its indexes)
-- under an exclusive lock: run this before units hold more than a few million rows, or
-- in a maintenance window.
alter type unit_state rename to unit_state_old;

create type unit_state as enum (
    'active', 'shipped', 'returned',
    'revoked', 'recalled', 'destroyed', 'stolen'
);

-- No unit was ever written 'issued'; should one exist, it is what a unit of a finished
-- batch is: active.
alter table units alter column state type unit_state
    using (case state when 'issued' then 'active' else state::text end)::unit_state;

drop type unit_state_old;
