-- SAML providers (issue 5): the SP private key that signs AuthnRequests, sealed to the row
-- (the rest of a SAML provider's settings is in `settings`).
ALTER TABLE providers ADD COLUMN saml_sp_key BLOB;
