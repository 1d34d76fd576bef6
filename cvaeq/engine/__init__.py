"""cvaeq.engine"""
