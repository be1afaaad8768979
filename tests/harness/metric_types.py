"""The Prometheus type of every series the daemon serves, as a scrape parses them: what
the unit and end-to-end tests of `player.metrics` expect."""

from __future__ import annotations

ALWAYS_SERVED = {
    "speechkit_player_build_info": "gauge",
    "speechkit_player_first_audio_seconds": "histogram",
    "speechkit_player_utterances": "counter",
    "speechkit_player_synthesis_errors": "counter",
    "speechkit_player_requests": "counter",
    "speechkit_player_fallbacks": "counter",
    "speechkit_player_resumed_calls": "counter",
    "speechkit_player_underruns": "counter",
    "speechkit_player_device_underruns": "counter",
    "speechkit_player_queue_length": "gauge",
    "speechkit_player_device_up": "gauge",
}
"""Served at every scrape. `speechkit_player_cloud_reachable` (gauge) comes once a call
has connected or failed to, `speechkit_player_token_expiry_timestamp_seconds` (gauge)
while the credential held expires."""
