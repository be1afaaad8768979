"""`bench/run`: the daemon against the alternatives a user could pick, in one run."""
