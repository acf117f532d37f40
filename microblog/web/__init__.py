"""The HTTP side: the app factory and the cross-cutting pieces every page relies on."""
