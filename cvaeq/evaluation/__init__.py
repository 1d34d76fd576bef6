"""cvaeq.evaluation"""
