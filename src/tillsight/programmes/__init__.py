"""Programme files that ship with tillsight."""
