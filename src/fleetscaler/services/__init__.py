"""Use cases: each one composes pure logic with the table (dal) and AWS adapters for one handler."""
