"""Alerts: tell the right people when a watched branch breaks, once, and when it recovers.

`config` reads ALERTS_CONFIG (rules, channels, mentions); `decide` turns the
store's state into breaks and outbox messages inside the transaction that
changed it; `message` builds what a message says; `render` spells it for each
kind of channel; `channels` sends one; `sender` delivers the outbox.
"""
