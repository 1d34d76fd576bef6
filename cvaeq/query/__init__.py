"""cvaeq.query"""
