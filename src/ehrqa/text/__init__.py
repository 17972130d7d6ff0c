"""Text shared by answers, decision support and evaluation: numbers and units as read."""
