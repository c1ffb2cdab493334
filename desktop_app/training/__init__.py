"""Training a voice on the user's own recordings (Qt-free): a training set from a session (cut at
pauses, transcribed, screened, reviewed, split), LoRA training through transformers' CSM labels and
peft with checkpoints that resume exactly, and what the training bought, measured.

peft is imported only in the modules that train or apply an adapter, never at package import.
"""
