"""migration_check"""
