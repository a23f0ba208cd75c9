-- One list encoding: a JSON array of strings, as every other list column holds. The providers'
-- scopes and e-mail domains were joined by spaces.
UPDATE providers SET scopes = CASE WHEN TRIM(scopes) = '' THEN '[]'
    ELSE to_json(string_to_array(TRIM(scopes), ' '))::text END;
UPDATE providers SET email_domains = CASE WHEN TRIM(email_domains) = '' THEN '[]'
    ELSE to_json(string_to_array(TRIM(email_domains), ' '))::text END;
