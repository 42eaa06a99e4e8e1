"""The federation harness: the suite plays the national directory and peer centers for a center
under test acting as a *home* center (spec §16.4-16.6, §17.3-17.7). See README.md."""
