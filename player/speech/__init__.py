"""Layer `speech`: what an utterance is and how utterances are scheduled and heard.

Owns: `text` (cutting streamed text at word boundaries), `markup` (what the service
would misread, neutralised; control characters removed), `sentences` (sentence
splitting), `utterance` (one utterance's streamed text), `priority` and `schedule`
(speech-dispatcher's priorities and the waiting order), `playback` (the worker: one
synthesis call at a time into the ring), `heard` (marks that fire when the callback
reaches them), `events` (the bus listeners read), `requests` (the one way in that every
front uses: utterances asked for, cancelled and stopped, with where they came from).
May import: `player.audio`, `player.synthesis` (its interface and errors),
`player.config`, `player.errors`, `player.limits`.
"""
