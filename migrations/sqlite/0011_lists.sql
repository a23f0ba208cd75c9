-- One list encoding: a JSON array of strings, as every other list column holds. The providers'
-- scopes and e-mail domains were joined by spaces (their items are scope tokens and domain
-- names, which never hold a space, a quote or a backslash).
UPDATE providers SET scopes = CASE WHEN TRIM(scopes) = '' THEN '[]'
    ELSE '["' || REPLACE(TRIM(scopes), ' ', '","') || '"]' END;
UPDATE providers SET email_domains = CASE WHEN TRIM(email_domains) = '' THEN '[]'
    ELSE '["' || REPLACE(TRIM(email_domains), ' ', '","') || '"]' END;
