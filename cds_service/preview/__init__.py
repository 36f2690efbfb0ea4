"""The preview page (demo mode): fixture patients, their hook calls, and cards as an EHR shows them."""
