"""keepstore, the block server: app.py routes; reads, relay, writes and admin serve; service.py
decides; store.py and volumes/ hold the blocks; workers.py runs in the background."""
