"""Deliver (design step 6): the dispatcher, its retry policy, outcomes, and the test send."""
