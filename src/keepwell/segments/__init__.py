"""Segments: a safe filter language over customers, saved segments and their membership history.

``filters`` parses, validates and compiles filter text to SQL; ``service`` saves segments and
refreshes their membership; ``stats`` keeps the per-customer behavioural table the filters read.
"""
