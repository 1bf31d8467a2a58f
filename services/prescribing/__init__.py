"""What the prescriber ordered: gabapentin regimens (schedule, maximum, taper), the one in force on a
local day, and the medication a dose defaults to. Entries, flags and reports read it; it reads nothing
of theirs."""
