"""cvaeq.mechanisms"""
