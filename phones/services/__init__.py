"""Services: every write of the phone side (the recorder's batches, the log store, log
retention and clearing, observed outcomes, the rollout watch), one module per subdomain."""
