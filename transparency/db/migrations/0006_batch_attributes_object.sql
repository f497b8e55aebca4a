-- A batch's attributes are unit facts shown by name over the product's: an object, as the
-- product's are (the API only ever writes objects; the database now refuses anything else).
alter table code_batches
    add constraint code_batches_attributes_object check (jsonb_typeof(attributes) = 'object');
