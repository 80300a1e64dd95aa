"""The survey's components: upsamplers, blocks and frameworks that named models compose."""
