"""lpcheck's obligations: the paper's claims as code, one module per claim (see DESIGN.md).

Installed as the subpackage `lpcheck.proofs`. `lpcheck verify` collects every module here.
"""
