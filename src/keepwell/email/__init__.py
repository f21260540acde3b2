"""E-mail delivery: the outbox, the SMTP sender, suppressions, signed links and tracking.

Other domains queue messages with :func:`keepwell.email.service.queue_message`; the sender
(:func:`keepwell.email.sender.send_due`, ``keepwell email send``) delivers them.
"""
