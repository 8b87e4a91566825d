"""The shared core: payload models, errors, settings, the boto3 client factory and member-account roles, account
facts, address guards and the WAF IPSet primitive every block list writes through. Imports nothing else of firebreak."""
