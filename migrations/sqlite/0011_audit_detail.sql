-- What an audited action was asked to do beyond its resource, as `key=value` pairs (e.g.
-- the denoising strength of a derived series). Never PHI, like the other columns.
ALTER TABLE audit_events ADD COLUMN detail TEXT;
