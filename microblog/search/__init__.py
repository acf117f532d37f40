"""Search: posts by their words (full text), people by their names (prefix and trigrams).

What a search finds obeys the same rule as the timelines (microblog/blocks/): posts of anyone
hidden_from the viewer, and people either side of a block, never show.
"""
