"""Rate limits shared by every instance: GCRA counters in PostgreSQL, one statement per check."""
