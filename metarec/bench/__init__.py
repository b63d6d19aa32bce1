"""The cold-start benchmark: shots x seeds x methods under protocol.md, reports and plots."""
