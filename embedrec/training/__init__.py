"""embedrec.training: see ARCHITECTURE.md. Kept empty: importing a module of this package must not
import its siblings (torch and pandas stay out of `recommend`)."""
