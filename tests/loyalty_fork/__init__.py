"""A shop's fork of oscar_loyalty that overrides only its policies (fixture ``forked_loyalty``)."""
