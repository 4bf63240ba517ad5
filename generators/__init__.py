"""Making suites. One room per job:

    behaviour/  what a diff is trained on: the writers (offline templates, an LLM, the paper's tables),
                the hidden-topic recipe and its measurement, open prompts
    training/   training many diffs at once: LoRA and dense trainers, and their bench
    tiny/       the tiny base model: corpus, tokenizer, pretraining, build
    splits/     the suite's extra splits, one module per split, and their registry
    publish/    a finished suite to and from the Hub: publishing, sealing a private split, importing
                the paper's diffs

The files beside the rooms assemble a suite: the tiny suite's recipe and card, the topic list,
sharded builds and their merge, running pieces in parallel, the build cache, and the commands.
"""
