"""Journeys: multi-step sequences (onboarding, renewal reminders, win-back).

``keepwell.journeys.service.enrol`` puts a customer in; ``advance`` (called by every
automation run) moves everyone who is due. See ``docs/journeys.md``.
"""
