"""Turning a stored submission into an email and handing it to a transport (design step 6)."""
