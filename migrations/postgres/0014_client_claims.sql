-- Per-client claims (#17): the user claims a client receives, a JSON list of claim names (NULL:
-- every claim its scopes give), and its group filter, a JSON object {"allow": [...],
-- "deny": [...]} of group patterns ('{}': every group).
ALTER TABLE clients ADD COLUMN claims TEXT;
ALTER TABLE clients ADD COLUMN group_filter TEXT NOT NULL DEFAULT '{}';
