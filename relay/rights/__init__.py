"""Data-subject rights (policy section 7): export, erasure, rectification, restriction,
withdrawal, and the request register."""
