"""E-mail through the configured SMTP server (STARTTLS and login when configured).

Used by the reporting reminders and by the scheduler's deliveries and alerts. A failure is
described by :func:`safe_error`, which never carries the password, the login or an address.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from hub.settings import Settings

SMTP_TIMEOUT_SECONDS = 30.0


def safe_error(exc: BaseException, settings: Settings, contact: str | None) -> str:
    """A short description of a failure that holds no secret (nor the mailbox address)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    for secret in (settings.smtp_password.get_secret_value(), settings.smtp_username, contact):
        if secret:
            text = text.replace(secret, "***")
    return text[:300]


class Mailer:
    """One SMTP connection for a run, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.smtp: smtplib.SMTP | None = None

    def send(self, message: EmailMessage) -> None:
        if self.smtp is None:
            s = self.settings
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=SMTP_TIMEOUT_SECONDS)
            try:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
            except BaseException:
                smtp.close()
                raise
            self.smtp = smtp
        try:
            self.smtp.send_message(message)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.close()
            raise

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None
