-- A development client may register http://localhost redirect URIs (matched exactly, port
-- included); every other client keeps to https, loopback IP literals and private-use schemes.
ALTER TABLE clients ADD COLUMN development INTEGER NOT NULL DEFAULT 0;
