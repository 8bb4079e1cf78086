"""The phone-facing side: update checks, downloads, log uploads, audit and inventory."""
