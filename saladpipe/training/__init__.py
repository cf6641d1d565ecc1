"""Training the embedded default's models on this machine, and the experiment that tests them.

`build` makes the teacher (a GPT-2 trained from scratch on WordNet glosses) and the
stage-I student (a speech-adapted LM distilled on Piper speech of a few domains);
`experiment` fine-tunes that student on synthetic speech chosen by each selection
strategy (stage II) and evaluates every arm on held-out glosses of all domains.
Importing this package loads torch; import it only where models train.
"""
