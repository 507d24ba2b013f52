"""The Textual cockpit: a client of the state store that sends commands."""
