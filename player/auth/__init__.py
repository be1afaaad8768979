"""Layer `auth`: what a SpeechKit call authenticates with, kept fresh in the background.

Owns: `credentials` (the `Credentials` interface every kind shares, the static API key
and IAM token, and `open_credentials`, which picks the kind the settings ask for),
`renewing` (tokens renewed at half their lifetime and when refused), `authorized_key`
(a service account's key exchanged for tokens), `metadata` (the VM's service account),
`token_file` (a token file read again when it changes), `http` (JSON requests to the
token services), `current` (the credentials in use, swapped by a reload).
May import: `player.config`, `player.errors`, `player.__version__` (the user agent).
"""

from player.auth.credentials import Credentials, open_credentials
from player.auth.current import CurrentCredentials

__all__ = ["Credentials", "CurrentCredentials", "open_credentials"]
