"""SQLite state: records, the intent journal, LAN records."""
