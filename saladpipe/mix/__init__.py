"""Training mixes: natural speech, selected synthetic speech and text, drawn by share."""
