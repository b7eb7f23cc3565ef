"""A shop's fork of oscar_loyalty that overrides its policies and the card list's table
(fixture ``forked_loyalty``)."""
