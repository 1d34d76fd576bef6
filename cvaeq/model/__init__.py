"""cvaeq.model"""
