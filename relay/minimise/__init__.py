"""Minimise (design step 8): retention dates, the Housekeeper, redaction of provider texts,
and backups that keep erasures."""
