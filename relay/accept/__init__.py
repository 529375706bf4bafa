"""Receive and validate (design steps 1 and 3): media types, Formspree's fields, the form's
declared fields, and the URLs relay takes from outside."""
